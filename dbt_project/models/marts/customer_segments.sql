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
        assignments.segment_id,
        assignments.distance_to_centroid,
        assignments.run_id,
        customers.gender,
        customers.is_married,
        customers.age,
        customers.has_degree,
        customers.profession,
        customers.work_experience,
        customers.spending_score,
        customers.spending_level,
        customers.family_size,
        customers.var_1

    from customers
    inner join assignments
        on customers.customer_id = assignments.customer_id

)

select * from final
