{#- The latest run's segment of each customer, beside the columns it is profiled on. -#}
{%- set columns = mart_columns() | rejectattr('role', 'equalto', 'label') | list -%}

with

customers as (

    select * from {{ ref('customer_features') }}

),

assignments as (

    select * from {{ source('segmentation', 'segment_assignments') }}

),

final as (

    select
        customers.customer_id,
        cast(assignments.segment_id as integer) as segment_id,
        cast(assignments.distance_to_centroid as double) as distance_to_centroid,
        assignments.run_id
        {%- for column in columns %},
        customers.{{ column.name }}
        {%- if column.ordered %},
        customers.{{ column.name }}_level
        {%- endif %}
        {%- endfor %}

    from customers
    inner join assignments
        on customers.customer_id = assignments.customer_id

)

select * from final
