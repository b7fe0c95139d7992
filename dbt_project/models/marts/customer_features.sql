{#- The clustering input: the id, every declared column whose role is not `ignored`
    (its `meta.role` in the generated contract tells Python what to do with it), the
    ranks of ordered categories, the behaviour from the order lines when there are any,
    and how many records were merged (0 = a customer of the order lines only).
    Without order lines it is int_customers_imputed as it stands, whose contract checks the
    same rules as it is written: a view then, on DuckDB, rather than a second copy of every
    customer (writing it cost a quarter of the mart step at 10 million). With order lines
    (the join adds customers, and the behaviour's rules), and on Spark, a table. -#}
{{ config(materialized='table' if target.type == 'spark' or declaration().behaviour else 'view') }}
{%- set columns = mart_columns() -%}

with

customers as (

    select * from {{ ref('int_customers_joined') }}

),

final as (

    select
        customer_id,
        {%- for column in columns %}
        {{ column.name }},
        {%- if column.ordered %}
        cast({{ column.name }}_level as integer) as {{ column.name }}_level,
        {%- endif %}
        {%- endfor %}
        cast(records_merged as bigint) as records_merged

    from customers

)

select * from final
